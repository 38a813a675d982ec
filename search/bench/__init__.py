"""The search's benchmarks (`python -m search.bench`): a runner of fresh child processes and
one module per section (overhead, memory sharing, loading, efficiency, GPU packing).
"""
