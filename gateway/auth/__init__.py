"""SMART Backend Services: client keys and assertions, scopes, access tokens."""
