"""formats: see the README's Design section."""
