"""Figures and tables for notebooks and the book, read from run folders."""
