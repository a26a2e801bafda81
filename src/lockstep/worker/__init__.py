"""The worker side of Temporal: the step activity and the lease its heartbeats keep alive."""
