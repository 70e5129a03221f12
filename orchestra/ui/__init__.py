"""The dashboard (`orchestra ui`): a Textual front end, imported only by that command."""
