"""The agent's built-in tools, each confined to the session's workspace."""
