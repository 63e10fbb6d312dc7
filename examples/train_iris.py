"""Train the embedded example model: logistic regression on sklearn's bundled iris data.

Usage: python examples/train_iris.py OUTPUT_DIR
Saves an MLflow model (sklearn flavor, signature, input example) that the README's walkthrough
builds into an image. No data is downloaded: iris ships inside scikit-learn.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression


def train(output: Path) -> Path:
    """Fit and save the model at ``output`` (replaced when it exists)."""
    iris = load_iris(as_frame=True)
    features = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=500).fit(features, iris.target)
    if output.exists():
        shutil.rmtree(output)
    mlflow.sklearn.save_model(
        model,
        str(output),
        signature=infer_signature(features, model.predict(features)),
        input_example=features.head(3),
        pip_requirements=["scikit-learn", "pandas"],
    )
    return output


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/train_iris.py OUTPUT_DIR")
    print(train(Path(sys.argv[1])))
