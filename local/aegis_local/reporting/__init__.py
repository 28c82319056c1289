"""What a local run leaves behind: the mission report (JSON, HTML, text), the state dump and the leak audit."""
