"""Model-from-code ``ResponsesAgent`` that echoes the last input message and custom inputs.

MLflow 2.22 names the request and response types ``ResponsesRequest``/``ResponsesResponse``,
3.x ``ResponsesAgentRequest``/``ResponsesAgentResponse``; the agent is the same on both.
"""

from typing import Any

import mlflow

try:
    from mlflow.types.responses import ResponsesAgentResponse as Response
except ImportError:  # MLflow 2.22
    from mlflow.types.responses import ResponsesResponse as Response  # type: ignore[no-redef,attr-defined]


def _text_of(item: Any) -> str:
    # Input items are MLflow's pydantic types or plain dicts (2.22); a function call's output has
    # no content but an output.
    fields = item.model_dump() if hasattr(item, "model_dump") else item
    content = fields.get("content", fields.get("output"))
    if isinstance(content, str):
        return content
    return " ".join(str(getattr(part, "text", part)) for part in content or [])


class EchoAgent(mlflow.pyfunc.ResponsesAgent):  # type: ignore[misc,name-defined]
    """Answers one output message with fixed ids, so both servers answer the same bytes."""

    def predict(self, request):  # type: ignore[no-untyped-def]
        said = _text_of(request.input[-1]) if request.input else ""
        # Plain dicts: MLflow validates them into its output item types, named differently in 2.22.
        output: list[Any] = [
            {
                "type": "message",
                "id": "msg-fixed",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": f"echo: {said}", "annotations": []}],
            }
        ]
        return Response(output=output, custom_outputs=request.custom_inputs)

    def predict_stream(self, request):  # type: ignore[no-untyped-def]
        # /invocations never streams; MLflow 2.22 requires the method all the same.
        yield from ()


mlflow.models.set_model(EchoAgent())
