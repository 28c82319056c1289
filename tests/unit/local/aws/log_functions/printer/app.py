"""A test function that writes the ways a handler writes: print, a logging handler on stdout, and a thread."""

import logging
import sys
import threading

logger = logging.getLogger("printer-test-function")
logger.propagate = False
if not logger.handlers:
    logger.addHandler(logging.StreamHandler(sys.stdout))
logger.setLevel(logging.INFO)


def handler(event, context):
    print(f"printed by {context.function_name}: {event.get('say', '')}")
    logger.info("logged by %s", context.function_name)
    if event.get("thread"):
        worker = threading.Thread(target=lambda: print("printed by a thread the handler started"))
        worker.start()
        worker.join()
    if event.get("fail"):
        raise RuntimeError("the handler failed on purpose")
    return {"ok": True}
