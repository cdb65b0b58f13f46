"""Numbered errors of the recall slice. The reference has no such operations, so the numbers are
ours (9201+), outside its catalogue (api.md §8); access errors reuse the correspondence slice's."""

from correspondence.kit.errors import ErrorSpec

RESOURCE_NOT_FOUND = ErrorSpec(9201, 404, "The resource was not found in the resource registry")
