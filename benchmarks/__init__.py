"""memobs_otel benchmarks: figures and ratios measured side by side in one run.

    .venv/bin/python -m benchmarks            # the whole table (about a minute or two)
    .venv/bin/python -m benchmarks --quick    # tiny sizes: checks that every benchmark runs

See the README's Performance section for what each row measures and what limits it.
Benchmarks are not tests: nothing here asserts a timing.
"""
