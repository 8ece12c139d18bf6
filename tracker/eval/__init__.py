"""eval: see the README's Design section."""
