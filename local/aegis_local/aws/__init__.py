"""The AWS half of the local stack: the SAM template read as CloudFormation, its resources created in moto, the
Lambda runtime, EventBridge, function URLs, log capture and the fixes moto needs, put together by `stack`."""
