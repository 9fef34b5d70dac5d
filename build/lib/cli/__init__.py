"""The command line: `python -m cli` creates, lists, shows, watches, posts, votes, moderates
and exports discussions on a local or remote service (see docs/ui-and-cli.md)."""
