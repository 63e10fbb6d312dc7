"""The Flask app: MLflow's routes, the built-ins, plugins, and the model they serve."""
