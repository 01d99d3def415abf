"""The enhancement models a caller can name (light: the CLI's --help reads it without torch)."""

MODELS: tuple[str, ...] = ("zipenhancer", "zipenhancer-small", "rnnoise", "spectral")
DEFAULT_MODEL = "zipenhancer-small"
