_instruments = ("google-adk >= 1.0",)
