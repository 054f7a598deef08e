"""Local stand-ins for the retailer's systems we call over HTTP, for `make up` and the tests."""
