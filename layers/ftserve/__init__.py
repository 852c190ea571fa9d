"""ftserve: versioned LoRA adapters behind an OpenAI-compatible API, with rollback in seconds."""

__version__ = "0.1.0"
