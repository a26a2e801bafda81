"""Identity and authorization: tokens, principals, roles and the permission table."""
