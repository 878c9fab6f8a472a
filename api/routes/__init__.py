"""HTTP routes: each validates, calls the pipeline off the event loop, and shapes the result."""
