"""A small FastAPI service: ``hello`` serves it with uvicorn on $PORT (default 8000)."""

import os
import platform

import uvicorn
from fastapi import FastAPI

app = FastAPI(title="hello")

GREETING = "hello from slimline"


@app.get("/")
def root() -> dict[str, str]:
    return {"message": GREETING, "python": platform.python_version(), "machine": platform.machine()}


def run() -> None:
    uvicorn.run(app, host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8000")))
