"""One module per paper: the adaptation algorithms, written against the TaskModel interface."""
