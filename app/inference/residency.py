"""Which adapters the vLLM server holds. Loads happen on first use; concurrent first
requests for one adapter share a single load; a vLLM restart is noticed (the adapter is
missing again) and repaired by reloading."""

import asyncio

from app.inference.vllm_client import VLLMClient


class AdapterResidency:
    def __init__(self, client: VLLMClient):
        self.client = client
        self.loaded: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure_loaded(self, lora_name: str, lora_path: str) -> None:
        if lora_name in self.loaded:
            return
        lock = self._locks.setdefault(lora_name, asyncio.Lock())
        async with lock:
            if lora_name in self.loaded:
                return
            if lora_name not in await self.client.loaded_adapters():
                await self.client.load_adapter(lora_name, lora_path)
            self.loaded.add(lora_name)

    def forget(self, lora_name: str) -> None:
        self.loaded.discard(lora_name)
