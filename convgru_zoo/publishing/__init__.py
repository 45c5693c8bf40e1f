"""Maintainers' tools: release a trained run, write its model card, publish it to the Hub. Each takes the
repository folder it works in explicitly and never writes into the installed package."""
