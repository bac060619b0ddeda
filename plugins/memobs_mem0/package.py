_instruments = ("mem0ai >= 1.0",)
