_instruments = ("llama-index-core >= 0.12",)
