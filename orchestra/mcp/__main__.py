from orchestra.mcp.server import main

main()
