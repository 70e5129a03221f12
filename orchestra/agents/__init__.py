"""Built-in agent profiles and the `demo` agent."""
