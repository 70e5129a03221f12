"""The MCP bridge: `orchestra mcp` (or `python -m orchestra.mcp`), an MCP server on stdio that
lets AI agents and tools drive Orchestra's tasks through the daemon's JSON-RPC API.

`link.py` talks to the daemon, `tools.py` defines the tools (SDK-free), `server.py` serves
them with the official MCP SDK. Importing this package imports nothing else: the SDK costs
most of a second, so only the bridge process loads it.
"""
