from experiments.wine import Params


def get_params():
    return [
        Params(name="knn-3", model_type="knn", n_neighbors=3),
        Params(name="knn-9", model_type="knn", n_neighbors=9),
        Params(name="tree-depth-3", model_type="tree", max_depth=3),
        Params(name="tree-full", model_type="tree"),
        Params(name="logistic", model_type="logistic"),
    ]
