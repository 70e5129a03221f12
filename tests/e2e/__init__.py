"""End-to-end tests: a real daemon running real agents in real PTYs, in real git repos."""
