"""Processing after collection: classification in batches, entities, reposts, indexing."""
