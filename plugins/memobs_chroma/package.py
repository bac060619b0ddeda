_instruments = ("chromadb >= 1.0",)
