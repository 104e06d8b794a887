"""Built-in wynerkit plugins, installed as ``wynerkit_plugins`` and registered by entry point."""
