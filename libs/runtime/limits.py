"""Message size limits shared by every gRPC client and server, and the bound the gateway derives
its HTTP limits from, so a request the gateway accepts is never refused by gRPC.

gRPC's default receive limit (4 MiB) is set explicitly instead, on both sides: the largest reply
(a search: 100 hits of a 100 000-character document with 32 metadata entries, UTF-8 up to 4
bytes a character) is ~53 MB, under 64 MiB.
"""

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MESSAGE_SIZE_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
# Protobuf framing can exceed JSON's per item (map entries): the most a JSON body of N documents
# can grow when re-encoded, per document; the gateway adds it to its body cap when checking.
PROTOBUF_OVERHEAD_PER_ITEM = 512
