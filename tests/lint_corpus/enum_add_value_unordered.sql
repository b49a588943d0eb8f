ALTER TYPE infra.recommendation_priority ADD VALUE 'URGENT'; -- expect: enum-add-value-unordered
