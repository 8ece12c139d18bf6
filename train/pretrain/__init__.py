"""Backbone pretraining on procedural objects (``kptrack pretrain``): :mod:`train.pretrain.shapes`
builds the objects, :mod:`train.pretrain.data` renders samples with dense pretext targets,
:mod:`train.pretrain.loop` trains the network and writes the backbone (:mod:`train.backbone`)."""
