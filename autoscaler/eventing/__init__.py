"""eventing"""
