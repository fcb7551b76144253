"""Alignment: systems as data (`systems`), training stages keyed, cached and published (`stages`), trl plumbing for
recipes (`training`), `accelerate launch` roles (`distributed`) and FLAME's method itself (`flame`: prompt styles and
pair rules). Recipes are plugins (`alignments/recipes/`)."""
