"""Built-in plugins. Each is an ordinary plugin that can be disabled or replaced."""
