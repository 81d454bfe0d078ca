"""Full gRPC service names, read from the generated descriptors (callers never import a service)."""

from inkwell.auth.v1 import auth_service_pb2
from inkwell.index.v1 import index_service_pb2
from inkwell.llm.v1 import llm_service_pb2

AUTH_SERVICE_NAME: str = auth_service_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name
LLM_SERVICE_NAME: str = llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name
INDEX_SERVICE_NAME: str = index_service_pb2.DESCRIPTOR.services_by_name["IndexService"].full_name
