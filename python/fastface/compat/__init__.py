"""Drop-in replacements for other face libraries' APIs, running on fastface."""
