"""Model-from-code ``ChatModel`` that echoes the conversation and its params.

Every field of the answer is fixed (``id``, ``created``), so two servers answering the same
request must answer the same bytes.
"""

import json

import mlflow
from mlflow.types.llm import ChatChoice, ChatCompletionResponse, ChatMessage


class EchoChatModel(mlflow.pyfunc.ChatModel):  # type: ignore[misc,name-defined]
    """Answers the last message and the params MLflow built from the request."""

    def predict(self, context, messages, params):  # type: ignore[no-untyped-def]
        said = messages[-1].content if messages else ""
        seen = {
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "stop": params.stop,
            "n": params.n,
            "stream": params.stream,
            "custom_inputs": params.custom_inputs,
        }
        return ChatCompletionResponse(
            choices=[
                ChatChoice(
                    index=0,
                    message=ChatMessage(role="assistant", content=f"echo: {said}"),
                    finish_reason="stop",
                )
            ],
            id="chatcmpl-fixed",
            model="echo-chat",
            created=0,
            object="chat.completion",
            custom_outputs={"seen": json.dumps(seen, sort_keys=True, default=str)},
        )


mlflow.models.set_model(EchoChatModel())
