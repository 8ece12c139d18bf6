"""PyTorch -> ONNX export with kptrack metadata, parity check and optional fp16."""
