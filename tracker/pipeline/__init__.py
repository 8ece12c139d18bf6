"""pipeline: see the README's Design section."""
