"""Serving backends behind one interface: vLLM, SageMaker inference components, hosted APIs."""
