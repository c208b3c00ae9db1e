"""An MLP that classifies scikit-learn's 8x8 digits"""
