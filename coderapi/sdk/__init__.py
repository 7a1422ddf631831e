"""Wire types (a mirror of codersdk): marshmallow schemas, one module per resource."""
