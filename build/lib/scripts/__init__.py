"""Developer and operator scripts: the run command, the embedded Redis, the demo."""
