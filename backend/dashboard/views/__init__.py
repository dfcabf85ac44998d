"""One script per dashboard page (not `pages/`: Streamlit would list that folder itself); each has
``render()`` and runs it when Streamlit executes the file."""
