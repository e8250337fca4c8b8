"""Choices that need a working engine to be made: which runtime and number format serve a model fastest
(`runtime`, backend="auto") and how big its batches should be (`batch_budget`), plus where both are kept between
starts (`store`). Above the engine, below the pool (raner_pool.loading puts them together)."""
