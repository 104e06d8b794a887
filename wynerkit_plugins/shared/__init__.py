"""Library code that more than one built-in plugin uses; no module here registers anything.

A plugin imports what it shares with another plugin from here, never from that plugin's module, so
blocking a plugin (``$WYNERKIT_BLOCK_PLUGINS``) leaves none of it loaded. docs/architecture.md lists
every module with the plugins that use it.
"""
