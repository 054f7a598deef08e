"""Channel adapters: turn what a mail provider or a social platform delivers into intake's input models."""
